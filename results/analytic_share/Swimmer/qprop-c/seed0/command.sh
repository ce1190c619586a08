#!/bin/bash
# Hopper and Swimmer seed 0, the first 500k steps of table1's qprop-c, at 7502926 (logs analytic_step_share).
cd /var/tmp/qprop-replay/analytic-share/wt-7502926
PY=/work/main/.venv/bin/python
for env in Hopper Swimmer; do
  $PY -m qprop_tf train --algo qprop-c --env $env --seed 0 --max-steps 500000 --out /var/tmp/qprop-replay/analytic-share/$env/qprop-c/seed0 --no-progress > /var/tmp/qprop-replay/analytic-share/$env-qprop-c.log 2>&1 &
done
wait
