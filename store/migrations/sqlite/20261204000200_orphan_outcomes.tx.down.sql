DROP TABLE orphan_outcomes;
