"""Care demand: ``census`` (readers, allocation to origins), ``care_index``, ``equity``."""
