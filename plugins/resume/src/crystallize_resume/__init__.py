"""crystallize-resume: ``Experiment.run(strategy="resume")``.

Continues the latest stored run in place: conditions with a completion
marker are skipped and their metrics loaded, finished replicates inside
unfinished conditions are skipped too, and a run whose code or parameters
changed is refused, naming the change, rather than mixed. Folders written by
crystallize-ml 0.27 resume too (:class:`LegacyRunWarning` when their id
cannot be checked).
"""

from crystallize_resume.plugin import LegacyRunWarning, ResumePlugin

__version__ = "0.1.0"

__all__ = ["ResumePlugin", "LegacyRunWarning", "__version__"]
