#!/bin/bash
# Reacher seed 0, 500k steps of table1's qprop-c config, at 7502926 (logs analytic_step_share).
cd /var/tmp/qprop-replay/analytic-share/wt-7502926
/work/main/.venv/bin/python -m qprop_tf train --algo qprop-c --env Reacher --seed 0 --max-steps 500000 --out /var/tmp/qprop-replay/analytic-share/Reacher/qprop-c/seed0 --no-progress > /var/tmp/qprop-replay/analytic-share/Reacher-qprop-c.log 2>&1
