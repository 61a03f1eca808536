from mltop.cli import main

raise SystemExit(main())
