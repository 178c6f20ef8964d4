package cli

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"gatehouse/internal/config"
	"gatehouse/internal/inspect"
	"gatehouse/internal/inspect/detectors"
)

func newInspectCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "inspect",
		Short: "Run the gateway's detectors (secrets, personal data, prompt injection) on your own data",
	}
	cmd.AddCommand(newInspectScanCmd(), newInspectEvalCmd())
	return cmd
}

// inspectEngine builds the engine and rules a configuration file (or the
// defaults) asks for.
func inspectEngine(configPath string) (*inspect.Engine, inspect.Rules, error) {
	var in config.Inspect
	if configPath != "" {
		cfg, err := config.LoadFile(configPath)
		if err != nil {
			return nil, nil, err
		}
		in = cfg.Inspect
	}
	e, err := detectors.New(in)
	if err != nil {
		return nil, nil, err
	}
	if e == nil {
		return nil, nil, fmt.Errorf("inspection is disabled in %s", configPath)
	}
	return e, detectors.GlobalRules(in), nil
}

// scanFinding is one finding as `inspect scan` prints it.
type scanFinding struct {
	Category   inspect.Category   `json:"category"`
	Type       string             `json:"type"`
	Start      int                `json:"start"`
	End        int                `json:"end"`
	Confidence inspect.Confidence `json:"confidence"`
	Action     inspect.Action     `json:"action"`
}

func newInspectScanCmd() *cobra.Command {
	var configPath, direction string
	var jsonl, tools bool
	cmd := &cobra.Command{
		Use:   "scan [--jsonl] [--config FILE] [--direction request|response] < INPUT",
		Short: "Print what the detectors find in text or JSON read from standard input",
		Long: `Scan standard input with the detectors and settings the gateway uses
and print the findings as one JSON object per line:

  {"id": "...", "findings": [{"category": "secret|pii|injection", "type": "...",
    "start": 12, "end": 52, "confidence": "high", "action": "block"}]}

start and end are byte offsets into the text (UTF-8), end exclusive; the
matched text is never printed. action is what the gateway would do with the
finding in the given direction (response: a result going back to an agent;
request: arguments going to a tool).

Without --jsonl the whole input is one text (id "stdin"); with --jsonl each
line is {"id": ..., "text": ...}. --tool-descriptions scans each text as a
tool description (tool poisoning) instead.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			e, rules, err := inspectEngine(configPath)
			if err != nil {
				return reportProblems(cmd, err)
			}
			dir := inspect.Direction(direction)
			if dir != inspect.Request && dir != inspect.Response {
				return fmt.Errorf("--direction %q: want request or response", direction)
			}
			out := json.NewEncoder(cmd.OutOrStdout())
			emit := func(id, text string) error {
				var fs []inspect.Finding
				if tools {
					fs = scanToolDescription(e, text)
				} else {
					fs = e.ScanText(text, nil)
				}
				res := struct {
					ID       string        `json:"id"`
					Findings []scanFinding `json:"findings"`
				}{ID: id, Findings: []scanFinding{}}
				for _, f := range fs {
					res.Findings = append(res.Findings, scanFinding{f.Category, f.Type, f.Start, f.End, f.Confidence, rules.ActionFor(&f, dir)})
				}
				return out.Encode(res)
			}
			if !jsonl {
				b, err := io.ReadAll(cmd.InOrStdin())
				if err != nil {
					return err
				}
				return emit("stdin", string(b))
			}
			sc := bufio.NewScanner(cmd.InOrStdin())
			sc.Buffer(make([]byte, 1<<20), 64<<20)
			line := 0
			for sc.Scan() {
				line++
				if strings.TrimSpace(sc.Text()) == "" {
					continue
				}
				var in struct {
					ID   json.RawMessage `json:"id"`
					Text *string         `json:"text"`
				}
				if err := json.Unmarshal(sc.Bytes(), &in); err != nil || in.Text == nil {
					return fmt.Errorf("line %d: want a JSON object with a string \"text\" (and an \"id\")", line)
				}
				id := strings.Trim(string(in.ID), `"`)
				if id == "" {
					id = fmt.Sprint(line)
				}
				if err := emit(id, *in.Text); err != nil {
					return err
				}
			}
			return sc.Err()
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "take the inspect section of this configuration (default: the built-in defaults)")
	cmd.Flags().BoolVar(&jsonl, "jsonl", false, `read one {"id":…, "text":…} object per line`)
	cmd.Flags().StringVar(&direction, "direction", "response", "decide actions as for results (response) or arguments (request)")
	cmd.Flags().BoolVar(&tools, "tool-descriptions", false, "scan the texts as tool descriptions (tool poisoning)")
	return cmd
}

// toolDescriptionScanner is the detector that also reads tool
// descriptions (the injection detector).
type toolDescriptionScanner interface {
	ScanToolDescription(desc string, dst []inspect.Finding) []inspect.Finding
}

func scanToolDescription(e *inspect.Engine, text string) []inspect.Finding {
	var fs []inspect.Finding
	for _, d := range e.Detectors() {
		if t, ok := d.(toolDescriptionScanner); ok {
			fs = t.ScanToolDescription(text, fs)
		} else {
			fs = d.Scan(text, fs)
		}
	}
	return fs
}

func newInspectEvalCmd() *cobra.Command {
	var configPath, corpus string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "eval [--corpus DIR|FILE] [--config FILE] [--json]",
		Short: "Print the detectors' precision, recall and F1 on a labelled corpus",
		Long: `Run the detectors over a labelled corpus (JSON lines: {"id", "text",
"expect": [{"category", "type", "match"}]}; testdata/inspect/ holds the
project's) and print precision, recall and F1 per detector and finding type.

Each corpus file is scored for the categories its labels use: a file of
secrets scores the secrets detector, with its hard negatives counted as
false positives when anything is found in them. Secrets and injection are
scored by category (any rule catching a secret is right), personal data by
type (an email found as a phone number is wrong). Samples whose note is
"tool-description" are scanned as tool descriptions.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			e, _, err := inspectEngine(configPath)
			if err != nil {
				return reportProblems(cmd, err)
			}
			files := []string{corpus}
			if fi, err := os.Stat(corpus); err != nil {
				return err
			} else if fi.IsDir() {
				files, _ = filepath.Glob(filepath.Join(corpus, "*.jsonl"))
				sort.Strings(files)
			}
			type row struct {
				File      string  `json:"file"`
				Key       string  `json:"key"`
				TP        int     `json:"tp"`
				FP        int     `json:"fp"`
				FN        int     `json:"fn"`
				Precision float64 `json:"precision"`
				Recall    float64 `json:"recall"`
				F1        float64 `json:"f1"`
				Samples   int     `json:"samples"`
			}
			var rows []row
			for _, file := range files {
				f, err := os.Open(file)
				if err != nil {
					return err
				}
				samples, err := inspect.ReadCorpus(f)
				f.Close()
				if err != nil {
					return fmt.Errorf("%s: %w", file, err)
				}
				cats := map[inspect.Category]bool{}
				for _, s := range samples {
					for _, x := range s.Expect {
						cats[x.Category] = true
					}
				}
				scan := func(smp *inspect.Sample) []inspect.Finding {
					var fs []inspect.Finding
					if smp.Note == "tool-description" {
						fs = scanToolDescription(e, smp.Text)
					} else {
						fs = e.ScanText(smp.Text, nil)
					}
					kept := fs[:0]
					for _, f := range fs {
						if cats[f.Category] {
							kept = append(kept, f)
						}
					}
					return kept
				}
				for _, s := range inspect.Evaluate(samples, scan, inspect.DefaultKey) {
					rows = append(rows, row{filepath.Base(file), s.Key, s.TP, s.FP, s.FN, s.Precision(), s.Recall(), s.F1(), len(samples)})
				}
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(rows)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "CORPUS\tKEY\tTP\tFP\tFN\tPRECISION\tRECALL\tF1")
			for _, r := range rows {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%.3f\t%.3f\t%.3f\n", r.File, r.Key, r.TP, r.FP, r.FN, r.Precision, r.Recall, r.F1)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "take the inspect section of this configuration (default: the built-in defaults)")
	cmd.Flags().StringVar(&corpus, "corpus", "testdata/inspect", "a corpus file, or a directory of *.jsonl files")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the scores as JSON")
	return cmd
}
