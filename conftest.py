# Make `import gpuseg` resolve to this checkout (also from a git worktree), before any
# installed copy.
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
