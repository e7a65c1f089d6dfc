package compact

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"

	"github.com/cdclake/cdclake/lakeformat"
)

// A snapshot table's columns are the changelog's, identified by Iceberg
// field id, not by name: the two tables number their fields independently,
// so the snapshot table records in lakeformat.PropChangelogFieldIDs which changelog
// field each of its fields holds. Before each compaction syncSchema brings
// the snapshot table's schema up to the changelog's:
//
//   - a changelog column the snapshot table lacks is added;
//   - a renamed changelog column is renamed in the snapshot table (same
//     field, so its values stay);
//   - a promoted changelog column (int to long, float to double, wider
//     decimal) is promoted in the snapshot table. Other type changes never
//     reach a changelog field: ingest gives them a new column version
//     ("<name>__v2", see ingest/schema.go), which is added like any other
//     column, and the changelog's cdclake.column-names is copied.
//
// Tables compacted before the property existed map their fields by name
// once, which is right as long as no column was renamed since.

// ChangelogFieldIDs returns the changelog field id of each field of a
// snapshot table (by snapshot field id). Fields missing from
// lakeformat.PropChangelogFieldIDs are matched by name to the changelog's current
// schema (for tables written before the property existed).
func ChangelogFieldIDs(sn *table.Table, cl *iceberg.Schema) map[int]int {
	ids := map[int]int{}
	var recorded map[string]int
	_ = json.Unmarshal([]byte(sn.Properties()[lakeformat.PropChangelogFieldIDs]), &recorded)
	taken := map[int]bool{}
	for k, v := range recorded {
		id, err := strconv.Atoi(k)
		if _, ok := sn.Schema().FindFieldByID(id); err == nil && ok {
			ids[id] = v
			taken[v] = true
		}
	}
	for _, f := range sn.Schema().Fields() {
		if _, ok := ids[f.ID]; ok {
			continue
		}
		if cf, ok := cl.FindFieldByName(f.Name); ok && !taken[cf.ID] {
			ids[f.ID] = cf.ID
			taken[cf.ID] = true
		}
	}
	return ids
}

// snapshotColumn tells whether a changelog column belongs in the snapshot
// table: source columns and _cdc_lsn.
func snapshotColumn(name string) bool { return !cdcColumns[name] || name == lakeformat.ColLSN }

// syncSchema brings the snapshot table's schema up to cl, the schema of
// the changelog snapshot compacted (renames, promotions, new columns,
// matched by field id), and returns the table and the properties that
// record the match, to commit with the data. It commits only when the
// schema changes.
func syncSchema(ctx context.Context, sn *table.Table, cl *iceberg.Schema, clProps iceberg.Properties, log *slog.Logger) (*table.Table, iceberg.Properties, error) {
	ids := ChangelogFieldIDs(sn, cl)
	held := map[int]iceberg.NestedField{} // changelog id -> snapshot field
	for sid, cid := range ids {
		f, _ := sn.Schema().FindFieldByID(sid)
		held[cid] = f
	}
	type rename struct{ from, to string }
	var renames []rename
	var promote, add []iceberg.NestedField
	for _, cf := range cl.Fields() {
		if !snapshotColumn(cf.Name) {
			continue
		}
		sf, ok := held[cf.ID]
		switch {
		case !ok:
			add = append(add, cf)
			continue
		case sf.Name != cf.Name:
			renames = append(renames, rename{sf.Name, cf.Name})
		}
		if !sf.Type.Equals(cf.Type) {
			promote = append(promote, cf)
		}
	}
	props := iceberg.Properties{}
	if v := clProps[lakeformat.PropColumnNames]; v != sn.Properties()[lakeformat.PropColumnNames] {
		props[lakeformat.PropColumnNames] = v
	}
	if len(renames)+len(promote)+len(add) == 0 {
		props[lakeformat.PropChangelogFieldIDs] = encodeFieldIDs(ids)
		return sn, props, nil
	}

	// one schema update per commit (iceberg-go v0.7.0 cannot commit two
	// in one transaction); each commit records the field ids, which
	// renames keep, so an interrupted sync resumes where it stopped
	commit := func(what string, update func(us *table.UpdateSchema)) error {
		tx := sn.NewTransaction()
		us := tx.UpdateSchema(true, false)
		update(us)
		if err := us.Commit(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		staged, err := tx.StagedTable()
		if err != nil {
			return err
		}
		for _, cf := range add {
			if f, ok := staged.Schema().FindFieldByName(cf.Name); ok {
				ids[f.ID] = cf.ID
			}
		}
		props[lakeformat.PropChangelogFieldIDs] = encodeFieldIDs(ids)
		if err := tx.SetProperties(props); err != nil {
			return err
		}
		nt, err := tx.Commit(ctx)
		if err != nil && retryable(err) {
			return fmt.Errorf("%w: %v", errStale, err)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		sn = nt
		return nil
	}
	// a new name may be the old name of another column (a swap): then
	// free the old names first through temporary ones
	collide := false
	for _, r := range renames {
		_, taken := sn.Schema().FindFieldByName(r.to)
		collide = collide || taken
	}
	if collide {
		err := commit("rename columns", func(us *table.UpdateSchema) {
			for i, r := range renames {
				tmp := fmt.Sprintf("_cdclake_rename_%d", i)
				us.RenameColumn([]string{r.from}, tmp)
				renames[i].from = tmp
			}
		})
		if err != nil {
			return nil, nil, err
		}
	}
	if len(renames) > 0 {
		err := commit("rename columns", func(us *table.UpdateSchema) {
			for _, r := range renames {
				us.RenameColumn([]string{r.from}, r.to)
			}
		})
		if err != nil {
			return nil, nil, err
		}
	}
	if len(promote)+len(add) > 0 {
		err := commit("update columns", func(us *table.UpdateSchema) {
			for _, cf := range promote {
				us.UpdateColumn([]string{cf.Name}, table.ColumnUpdate{FieldType: iceberg.Optional[iceberg.Type]{Val: cf.Type, Valid: true}})
			}
			for _, cf := range add {
				us.AddColumn([]string{cf.Name}, cf.Type, cf.Doc, false, nil)
			}
		})
		if err != nil {
			return nil, nil, err
		}
	}
	var renamed, promoted, added []string
	for _, r := range renames {
		renamed = append(renamed, r.to)
	}
	for _, cf := range promote {
		promoted = append(promoted, cf.Name+" "+cf.Type.String())
	}
	for _, cf := range add {
		added = append(added, cf.Name)
	}
	log.Info("snapshot table schema updated", "renamed_to", renamed, "promoted", promoted, "added", added, "via_temporary_names", collide)
	return sn, props, nil
}

func encodeFieldIDs(ids map[int]int) string {
	m := make(map[string]int, len(ids))
	for k, v := range ids {
		m[strconv.Itoa(k)] = v
	}
	b, _ := json.Marshal(m) // sorted keys: stable text
	return string(b)
}
