"""What only the lessons use: profiles, plots, training helpers, experiments, guidelines,
optimviz, exercises (solutions to exercises), the set-up cell, lesson 17's multi-device parts,
lesson 11's toy search and the graders. The library a learner keeps after the course is the rest
of cnnkit; the zoo is cnnkit.models.

The lessons import these modules by their old names (`cnnkit.training`, `cnnkit.grading`);
cnnkit/__init__.py makes each old name the very module here.
"""
