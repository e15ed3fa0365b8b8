export declare const BUILD_STAMP: string
export declare function buildIsCurrent(root: string, env?: Record<string, string | undefined>): boolean
