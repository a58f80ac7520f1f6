"""The shared language of the Innomatch services.

Event models, topic names and vocabularies (CPV, NUTS, organisation numbers, enums).
Every service may import this package; it imports no service.
"""
