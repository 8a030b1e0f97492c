"""immunotox — grading, management and monitoring of immunotherapy toxicities.

Decision support for professionals, not a diagnosis: every grade names its source and its
missing inputs.

>>> import immunotox
>>> immunotox.grade("astct2019:icans", {"ice_score": 3, "seizure": "clinical_resolved",
...     "consciousness": "awake", "motor": "none", "cerebral_edema": "none",
...     "raised_icp_signs": False}).grade
3
"""

from .catalogue import all_scales, get_scale, grade
from .errors import FindingError, ImmunotoxError, RuleSpecError, UnitError, UnknownScaleError
from .result import GradeResult, RuleHit

__version__ = "0.1.0"

__all__ = [
    "FindingError",
    "GradeResult",
    "ImmunotoxError",
    "RuleHit",
    "RuleSpecError",
    "UnitError",
    "UnknownScaleError",
    "__version__",
    "all_scales",
    "get_scale",
    "grade",
]
