"""`portlab demo`: a trainer's guided walk through a lab, step by step, on real traffic.

    walk    run one step of a lab's `demo:` on a running instance: say, solve, run with a
            trace, check
"""
