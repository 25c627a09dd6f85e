from crystallize._cli import main

raise SystemExit(main())
