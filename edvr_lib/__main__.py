from edvr_lib.cli import main

raise SystemExit(main())
