"""smartcare.genomics domain."""
