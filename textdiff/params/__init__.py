"""The params schema, split by owner so a stage depends on the modules it reads (DESIGN §conventions).

``base`` (Section, YAML reading, the defaults merge) · ``shared`` (backbone, one trained component, sample count,
the shared processes) · one module per family, named as the family (``mdlm`` beside textdiff/families/mdlm.py) ·
``rows`` (the union of the families' rows, the defaults block) · ``run`` (seed, device, processes, budget, the
sections every training stage reads) · ``data`` · ``evaluation`` (evaluate, the judge) · ``tasks`` · ``report`` ·
``tracking`` · ``orchestration``. ``textdiff.config`` assembles them into the whole ``Params`` that stage validate
checks. Nothing here imports torch.
"""

# The family modules textdiff/families/<family>.py, each with its row schema textdiff/params/<family>.py
# (textdiff.params.rows checks that the two lists agree).
FAMILIES = ("ar", "embedding", "mdlm", "d3pm", "sedd", "simplex", "encoder", "latent")
