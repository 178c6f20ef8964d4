// Command gatehouse is the Gatehouse gateway: one binary with subcommands
// (serve, validate, demo-server, bench, ...). All wiring lives in internal/cli.
package main

import (
	"os"

	"gatehouse/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:]))
}
