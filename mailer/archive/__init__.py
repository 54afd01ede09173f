"""The public archive: sent issues as their readers got them, minus everything personal."""
