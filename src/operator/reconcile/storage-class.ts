/** The StorageClass an EventLog's claim uses (not watched: read each pass, it is small). */
import { Resource, type Resources } from '../../runtime/resources.ts';

export interface StorageClassInfo {
  name: string;
  found: boolean;
  allowVolumeExpansion?: boolean;
}

export async function lookupStorageClass(resources: Resources, name: string): Promise<StorageClassInfo> {
  const sc = await resources.getOptional<{ allowVolumeExpansion?: boolean }>(Resource.storageClasses, undefined, name);
  if (!sc) return { name, found: false };
  return { name, found: true, ...(sc.allowVolumeExpansion !== undefined ? { allowVolumeExpansion: sc.allowVolumeExpansion } : {}) };
}
