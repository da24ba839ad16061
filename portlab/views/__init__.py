"""Views: every text portlab writes for people, and the machine-readable reports.

    brief       `portlab show`: story, network, tasks (markdown, topology: its parts)
    listing     `portlab list`
    report      check results: terminal, JSON, JUnit XML
    status      `portlab status`
    lifecycle   what `up`, `down` and `prune` say when done
    progress    long work, on a terminal or in a log
"""
