package main

import (
	"github.com/hikeshi/hikeshi/services/github"
	"github.com/hikeshi/hikeshi/services/jira"
	"github.com/hikeshi/hikeshi/services/module"
	"github.com/hikeshi/hikeshi/services/notify"
	"github.com/hikeshi/hikeshi/services/public"
	"github.com/hikeshi/hikeshi/services/signals"
	"github.com/hikeshi/hikeshi/services/slackbot"
)

// modules is the module table: every optional part this binary has. The hub
// runs a module when hikeshi.yaml has its section (or --targets names it).
// Adding a consumer is one package exporting a module.Module and one row
// here. The order is the order modules start in, and the order --targets
// and configuration errors list them in.
var modules = []module.Module{
	github.Module,
	jira.Module,
	notify.Module,
	public.Module,
	signals.Module,
	slackbot.Module,
}
