"""The demo behind `innomatch dev --demo`: a realistic data set loaded through the public
APIs and a local webhook receiver that prints each alert with its explanation.

Operator tooling, not a service: it imports only contracts (and infra), never a service.
"""
