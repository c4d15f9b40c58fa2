-- Search narrows to blocks of lines, not whole files: a large file holds every trigram of
-- a query somewhere without holding the query, and was read whole for it. `grams` holds
-- the file's blocks (about 8 KiB of whole lines each) with a Bloom filter of each one's
-- trigrams (`codebase::trigrams`); each instance keeps the live generation's filters in
-- memory, so a search asks the database for no narrowing at all. The trigram arrays and
-- their GIN index, which only narrowed to files (8–13 ms a query) and were most of an
-- index's writing, go. Rows written before this have no filter: an instance computes
-- theirs from the text when it reads them.
DROP INDEX project_contents_trigrams;
ALTER TABLE project_contents DROP COLUMN trigrams;
ALTER TABLE project_contents ADD COLUMN grams BYTEA;
