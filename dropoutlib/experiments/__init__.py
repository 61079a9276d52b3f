"""One module per chapter, named by the chapter's slug: the chapter's experiments and its claims.

``chapters/NN-slug.md`` runs the experiments of ``dropoutlib/experiments/slug.py`` (dashes become
underscores) and checks its claims with the same functions that ``tests/chapters/test_slug_claims.py``
calls over several seeds; each threshold a claim uses is written once, in the experiment module.
"""
