"""Outbreak (aberration) detection matching R surveillance 1.20.3: EARS C1-C3, farringtonFlexible, CUSUM."""
