"""``smartcare hospital ...`` commands. Subpackages register their commands into ``app``."""

from __future__ import annotations

from smartcare.core.cli import CommandApp
from smartcare.hospital.cds.cli import register as _register_cds
from smartcare.hospital.fhir.cli import register as _register_fhir
from smartcare.hospital.nlp.cli import register as _register_nlp
from smartcare.hospital.nlp.notes_cli import register as _register_notes

app = CommandApp(help="Smart hospital: FHIR R4 store, decision support, clinical NLP.", no_args_is_help=True)

_register_fhir(app)
_register_cds(app)
_register_nlp(app)
_register_notes(app)
