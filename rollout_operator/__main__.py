from rollout_operator.cli import main

raise SystemExit(main())
