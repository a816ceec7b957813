"""The GitHub Action's logic: the task from the event, the job summary, the pull request or
comment. `action.yml` runs each piece as `python -m patchwright.github.steps STEP`."""
