"""The CI systems' own formats, as their tools read them: GitHub Classroom's reporter,
Gradescope's results.json (schemas in this folder, and a model of the reporter's reading)."""
