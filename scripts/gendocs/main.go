// Command gendocs writes bindguard's man pages and shell completions, generated from its
// command tree, for packaging: go run ./scripts/gendocs DIR (see internal/cli.WriteDocs).
// The pages' date is SOURCE_DATE_EPOCH when set (reproducible builds), else today.
package main

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/bindguard/bindguard/internal/cli"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: go run ./scripts/gendocs DIR")
		os.Exit(2)
	}
	date := time.Now().UTC()
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			fmt.Fprintf(os.Stderr, "gendocs: SOURCE_DATE_EPOCH %q is not a number of seconds\n", s)
			os.Exit(2)
		}
		date = time.Unix(sec, 0).UTC()
	}
	if err := cli.WriteDocs(os.Args[1], date); err != nil {
		fmt.Fprintln(os.Stderr, "gendocs:", err)
		os.Exit(1)
	}
}
