"""Care Block sites: ``candidates``, ``scoring`` (catchments, components), ``selection``, ``rationale``."""
