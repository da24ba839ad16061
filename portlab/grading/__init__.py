"""Grading: a student's submission, graded by real traffic on a fresh instance of their variant.

    submission  the files a lab takes, checked before anything starts (exit 2)
    grade       one grade: variant, instance, files applied under limits, checks, points
    batch       a whole class at once, with bounded parallelism
    classroom   starter repositories and reference submissions for course staff
"""
