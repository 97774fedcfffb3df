package main

// The hub's optional modules register themselves when linked in; a module
// runs when hikeshi.yaml has its section.
import (
	_ "github.com/hikeshi/hikeshi/services/github"
	_ "github.com/hikeshi/hikeshi/services/jira"
	_ "github.com/hikeshi/hikeshi/services/notify"
	_ "github.com/hikeshi/hikeshi/services/public"
	_ "github.com/hikeshi/hikeshi/services/signals"
	_ "github.com/hikeshi/hikeshi/services/slackbot"
)
