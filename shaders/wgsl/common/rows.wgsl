// A step's row placement (realm-core's RowsPlan), staged once per step as u32 words:
//   [pos[n_rows], seq[n_rows], slot[n_rows], table_start[n_seq], tables[..]]
// (row r is position pos[r] of sequence seq[r] and its keys and values live in pool slot
// slot[r]; sequence s's block table is tables[table_start[s] ..]). Needs a `rows` binding and
// `p.n_rows`.

fn row_pos(r: u32) -> u32 {
    return rows[r];
}

fn row_seq(r: u32) -> u32 {
    return rows[p.n_rows + r];
}

fn row_slot(r: u32) -> u32 {
    return rows[2u * p.n_rows + r];
}

// Where sequence s's block table starts in `rows` (`tables_at`: the word where the tables
// start, 3 · n_rows + n_seq).
fn table_of(s: u32, tables_at: u32) -> u32 {
    return tables_at + rows[3u * p.n_rows + s];
}
