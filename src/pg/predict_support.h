/*
 * predict_support.h: the planner hook of predict_support.c (scoring by name
 * anywhere, issue #11). _PG_init calls predict_support_init() once.
 */
#ifndef MLPIPE_PREDICT_SUPPORT_H
#define MLPIPE_PREDICT_SUPPORT_H

extern void predict_support_init(void);

#endif
