package tds

const tokenRow uint8 = 0xD1

// Row is a ROW token (MS-TDS 2.2.7.19): one value per column of the
// preceding COLMETADATA.
type Row []any

// Marshal appends the token. It fails when a value does not fit its column.
func (row Row) Marshal(b []byte, cols ColMetadata) ([]byte, error) {
	b = append(b, tokenRow)
	for i, col := range cols {
		var v any
		if i < len(row) {
			v = row[i]
		}
		var err error
		if b, err = AppendValue(b, col.Type, v); err != nil {
			return b, err
		}
	}
	return b, nil
}

func unmarshalRow(r *rd, cols ColMetadata) (Row, error) {
	row := make(Row, len(cols))
	for i, c := range cols {
		v, err := readValue(r, c.Type)
		if err != nil {
			return nil, err
		}
		row[i] = v
	}
	return row, nil
}
