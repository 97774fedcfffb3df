module github.com/hikeshi/hikeshi/events

go 1.26
