"""The smart hospital: FHIR R4 store (``fhir``), clinical decision support and clinical NLP."""
