# from the checkout at 42cd5a6: the failed run's spec.json overrides, 250k steps,
# once as it was (bootstrap_truncation=true) and once with the authors' behaviour (false)
for v in true false; do
  .venv/bin/python -m qprop_tf train --algo trpo --env Swimmer --seed 1 --no-progress --max-steps 250000 \
    --out /tmp/b1000-s1-boot$v $(echo "--set gamma=0.99 --set gae_lambda=0.97 --set policy_hidden=100,50,25 --set init_std=1.0 --set baseline=linear --set baseline_reg=1e-05 --set center_advantages=true --set fit_baseline_first=false --set bootstrap_truncation=true --set n_envs=1 --set tf_threads=1 --set batch_size=1000" | sed "s/bootstrap_truncation=true/bootstrap_truncation=$v/")
done
