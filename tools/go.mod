module github.com/hikeshi/hikeshi/tools

go 1.26
