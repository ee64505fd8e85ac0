"""Care demand: ``census`` (readers, allocation to origins), ``groups`` (care groups from
declared census columns), ``residential`` (people over residential land), ``care_index``,
``equity``."""
