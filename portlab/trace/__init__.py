"""`portlab trace`: real packets and NAT translations at lab nodes, in words a beginner reads.

    events  one tcpdump or conntrack line -> an Event, and the words for it
    live    the tools running on nodes through the backend seam, their events merged
"""
