"""smartcare.imaging domain."""
