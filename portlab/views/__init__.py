"""Views: every text portlab writes for people, and the machine-readable reports.

    brief       `portlab show`: story, network, tasks (markdown, topology: its parts)
    listing     `portlab list`
    report      check results: terminal, JSON, JUnit XML
    status      `portlab status`
    lifecycle   what `up`, `down` and `prune` say when done
    progress    long work, on a terminal or in a log
    layout      one layout model of a lab's network: the terminal drawing and the diagram
    diagram     the network as SVG or PNG (Graphviz)
    html        the check report and the live page (templates in views/pages/)
    trace, demo `portlab trace` and `portlab demo` in the terminal
"""
