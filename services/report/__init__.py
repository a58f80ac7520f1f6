"""The results report for the agency (`innomatch report`): operator tooling, not a service.

It learns everything from the event topics (and the authorities from the needs service's
operator API), never from a service's tables.
"""
