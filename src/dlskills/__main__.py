from dlskills.cli import main

raise SystemExit(main())
