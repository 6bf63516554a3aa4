"""Results and analysis: the results API (:mod:`.api`), seed aggregation (:mod:`.stats`), tables in Markdown,
CSV and LaTeX (:mod:`.tables`), sweep figures (:mod:`.figures`), published numbers (:mod:`.paper`), the
``vaeray report`` document (:mod:`.compose`), plots of one trained run (:mod:`.plots`, ``vaeray plot``) and the
live sweep status line (:mod:`.live`). No ``ray`` here: everything reads storage directly.
"""
