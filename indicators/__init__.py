"""Service indicators for the municipality and the care team.

Owns the figures of how the service performs: alarm handling, escalations, check-in
adherence, device uptime, video calls and residents served, with small counts suppressed.
Reads the other domains through their public surfaces; never writes their rows.
"""

__all__: list[str] = []
