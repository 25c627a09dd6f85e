"""crystallize-resume: ``Experiment.run(strategy="resume")``.

Continues the latest stored run in place: conditions with a completion
marker are skipped and their metrics loaded, finished replicates inside
unfinished conditions are skipped too, and a run whose pipeline changed is
refused rather than mixed.
"""

from crystallize_resume.plugin import ResumePlugin

__version__ = "0.1.0"

__all__ = ["ResumePlugin", "__version__"]
