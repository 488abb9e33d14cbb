/** The EventLog resource for Resources/finalizer calls. */
import { GROUP, PLURAL, VERSION } from '../../api/eventlog.ts';
import { resourcePath, type ResourceType } from '../../runtime/resources.ts';

export const EVENTLOG_RESOURCE: ResourceType = { group: GROUP, version: VERSION, plural: PLURAL };

/** The EventLog collection path of a namespace (the finalizer patches `<collection>/<name>`). */
export const eventLogCollection = (namespace: string): string => resourcePath(EVENTLOG_RESOURCE, namespace);
