"""The forum's pages, by audience: public, sign-in, supplier, buyer group, operator."""
