"""smartcare.publichealth domain."""
