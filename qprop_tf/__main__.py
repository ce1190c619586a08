from qprop_tf.cli import main

raise SystemExit(main())
