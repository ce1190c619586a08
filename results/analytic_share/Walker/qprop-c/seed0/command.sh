#!/bin/bash
# Walker seed 0, the first 500k steps of stable-walker's qprop-c and qprop-c-scaled, at 7502926
# (which logs analytic_step_share); same config as the profile's runs otherwise.
cd /var/tmp/qprop-replay/analytic-share/wt-7502926
PY=/work/main/.venv/bin/python
$PY -m qprop_tf train --algo qprop-c --env Walker --seed 0 --max-steps 500000 --out /var/tmp/qprop-replay/analytic-share/qprop-c/seed0 --no-progress > /var/tmp/qprop-replay/analytic-share/qprop-c.log 2>&1 &
$PY -m qprop_tf train --algo qprop-c --env Walker --seed 0 --max-steps 500000 --set scale_analytic=true --out /var/tmp/qprop-replay/analytic-share/qprop-c-scaled/seed0 --no-progress > /var/tmp/qprop-replay/analytic-share/qprop-c-scaled.log 2>&1 &
wait
